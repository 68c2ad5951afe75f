"""Engines built on the cached MIB builder are pysnmp's engines, minus the recompiling."""

from __future__ import annotations

from pysnmp.entity import config
from pysnmp.entity.engine import SnmpEngine

from drivers.snmp.engine import new_engine


def test_the_cached_engine_loads_what_pysnmp_loads() -> None:
    stock, cached = SnmpEngine(), new_engine()
    for module, name in (("SNMPv2-MIB", "sysDescr"), ("SNMP-USER-BASED-SM-MIB", "usmUserTable"),
                         ("SNMP-TARGET-MIB", "snmpTargetAddrTable")):
        (a,) = stock.get_mib_builder().import_symbols(module, name)
        (b,) = cached.get_mib_builder().import_symbols(module, name)
        assert a.name == b.name, (module, name)
    assert sorted(stock.get_mib_builder().mibSymbols) == \
        sorted(cached.get_mib_builder().mibSymbols)


def test_engines_do_not_share_state() -> None:
    one, two = new_engine(), new_engine()
    assert one.get_mib_builder() is not two.get_mib_builder()
    assert one.message_dispatcher.mib_instrum_controller is not \
        two.message_dispatcher.mib_instrum_controller
    config.add_v1_system(one, "only-in-one", "community-one")
    (one_name,) = one.get_mib_builder().import_symbols("SNMP-COMMUNITY-MIB",
                                                       "snmpCommunityName")
    (two_name,) = two.get_mib_builder().import_symbols("SNMP-COMMUNITY-MIB",
                                                       "snmpCommunityName")
    assert one_name is not two_name
    assert len(one_name._vars) == 1  # the row added to engine one
    assert len(two_name._vars) == 0  # and none in engine two
