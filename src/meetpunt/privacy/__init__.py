"""The privacy gate (PRV-1..7): the one door to meter data.

Every read names its purpose, passes :class:`~meetpunt.privacy.gate.Gate`, and lands in
the audit log the customer can read. See ``docs/privacy.md``.
"""
