"""Reading the simulator's fault spec."""

import pytest

from zaphub_session_host.transport.sim import SimFaults, SimFaultSpecError


def test_fault_spec_reads_compact_and_json_forms() -> None:
    """`key=value` pairs and a JSON object configure the same faults; empty means none."""
    assert SimFaults.parse("") == SimFaults()
    compact = SimFaults.parse("send_delay=0.2, fail_rate=0.05,drop_every=60")
    assert compact == SimFaults(send_delay=0.2, fail_rate=0.05, drop_every=60)
    assert SimFaults.parse('{"send_delay": 0.2, "fail_rate": 0.05, "drop_every": 60}') == compact


@pytest.mark.parametrize("spec", ["nonsense", "typo=1", "fail_rate=2", "send_delay=x", "{bad json"])
def test_bad_fault_spec_is_refused(spec: str) -> None:
    """A fault spec with unknown keys or bad values stops the host instead of being half-applied."""
    with pytest.raises(SimFaultSpecError):
        SimFaults.parse(spec)
