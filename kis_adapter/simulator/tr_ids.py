"""
The real-time TR ids KIS serves, so the simulator answers any other one with OPSP8991 as KIS does.

Source: every WebSocket TR id in the official samples (koreainvestment/open-trading-api, commit 885dd4e:
examples_llm, examples_user, legacy), which covers the [국내선물옵션] list of the protocol reference §5.
The simulator also accepts the TRs of the captures it replays.
"""

from __future__ import annotations

from typing import Final

KIS_REALTIME_TR_IDS: Final = frozenset(
    {
        # domestic stock futures / options (주식선물옵션): expected fill, trade, book
        "H0ZFANC0",
        "H0ZFCNT0",
        "H0ZFASP0",
        "H0ZOANC0",
        "H0ZOCNT0",
        "H0ZOASP0",
        # index futures / options, commodity futures, KRX night futures / options (EUREX)
        "H0IFCNT0",
        "H0IFASP0",
        "H0IOCNT0",
        "H0IOASP0",
        "H0CFCNT0",
        "H0CFASP0",
        "H0MFCNT0",
        "H0MFASP0",
        "H0EUANC0",
        "H0EUCNT0",
        "H0EUASP0",
        "H0EWANC0",
        "H0EWCNT0",
        "H0EWASP0",
        # fill notices (encrypted; paper-trading variants end in 9)
        "H0IFCNI0",
        "H0IFCNI9",
        "H0MFCNI0",
        "H0EUCNI0",
        "H0STCNI0",
        "H0STCNI9",
        "H0GSCNI0",
        "H0GSCNI9",
        # domestic stocks: KRX (ST), NXT (NX), integrated (UN), indices (UP), ETF NAV, bonds (BI/BJ)
        "H0STANC0",
        "H0STCNT0",
        "H0STASP0",
        "H0STMBC0",
        "H0STMKO0",
        "H0STNAV0",
        "H0STOAA0",
        "H0STOAC0",
        "H0STOUP0",
        "H0STPGM0",
        "H0NXANC0",
        "H0NXCNT0",
        "H0NXASP0",
        "H0NXMBC0",
        "H0NXMKO0",
        "H0NXPGM0",
        "H0UNANC0",
        "H0UNCNT0",
        "H0UNASP0",
        "H0UNMBC0",
        "H0UNMKO0",
        "H0UNPGM0",
        "H0UPANC0",
        "H0UPCNT0",
        "H0UPPGM0",
        "H0BICNT0",
        "H0BJCNT0",
        "H0BJASP0",
        # overseas stocks and futures
        "HDFSCNT0",
        "HDFSASP0",
        "HDFSASP1",
        "HDFFF010",
        "HDFFF020",
        "HDFFF1C0",
        "HDFFF2C0",
    }
)
