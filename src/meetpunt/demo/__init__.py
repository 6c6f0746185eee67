"""``meetpunt demo``: the main job on the embedded default (no server needed).

:mod:`~meetpunt.demo.chain` runs a generated region through the whole chain and
:mod:`~meetpunt.demo.report` writes its HTML report; :mod:`~meetpunt.demo.score` scores
the use cases against the twin's truth; :mod:`~meetpunt.demo.register_example` is the
smaller walk through the example register (REG-5).
"""
