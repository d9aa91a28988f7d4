"""The link: everything between the teacher's hand-off and the apprentice's reassembly.

Packets and headers (:mod:`.packets`), channels (:mod:`.channels`), the PHY modes (bit-true
:mod:`.phy`, :mod:`.abstraction` over :mod:`.calibration` tables, :mod:`.fixed_bler`;
registered in :mod:`.modes`), ARQ (:mod:`.arq`), the discrete-event timing (:mod:`.des`) and
the `[link]` section (:mod:`.config`). The link imports nothing from the teacher, the
apprentice, the pipelines or the ledger.
"""
