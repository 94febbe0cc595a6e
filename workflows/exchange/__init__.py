"""The steps of one holder's exchange (``workflows.holder_exchange.HolderExchange``), each a
module of plain functions of the exchange's state (``state.ExchangeState``).

Side-effect free and without module state (pure modules the sandbox passes through).
"""
