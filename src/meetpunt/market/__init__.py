"""Pure pricing for the supply market (MKT-1..7, issue 20): contracts and prices as data,
consumption into invoice lines, the end of netting on 1 January 2027, advances and the
annual settlement, large consumers, switching, termination fees and smart-meter fees.

No I/O beyond reading rule files through :mod:`meetpunt.rulebook` and the user's price
file (:mod:`meetpunt.market.pricefile`); the register and meter data reach it as values.
"""
