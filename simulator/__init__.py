"""semsim: a semantic-communication link simulator.

Data flows one way: Source -> Teacher -> Link -> Apprentice -> Ledger (see docs/design.md).
"""

__version__ = "0.1.0"
