"""The push engine over real sockets against the simulated lab, on every protocol: provision
and verify, idempotent resend, dry run, missing network service, refusal, offline ONT (with
rollback where declared), timeouts, held locks and retries, NETCONF batching in the per-OLT
queue; and the classification table of every driver error."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any

import pytest

from agent.errors import Classified, ErrorClass, classify
from agent.intent import OntIntent, ServiceIntent
from agent.profiles import load_profile
from agent.push import (
    OltQueue,
    Outcome,
    PushJob,
    PushResult,
    RetryPolicy,
    Stage,
    push,
    verifier_for,
    with_retries,
)
from drivers.base import CommitResult, Driver
from drivers.errors import (
    AuthenticationError,
    CliRejectedError,
    ConnectError,
    DriverError,
    DriverTimeoutError,
    HostKeyError,
    MismatchError,
    NetconfErrorInfo,
    NetconfLockDeniedError,
    NetconfRejectedError,
    ProtocolError,
    RefusedError,
    SessionLostError,
    SnmpRejectedError,
    UnsupportedError,
)
from drivers.netconf import NetconfDriver
from drivers.snmp import SnmpDriver
from simulator.devices import Olt, OntState
from simulator.lab import Lab
from tests.agent.test_render import ONT, SERIAL, SVC, VANI, make_driver, ssh_target

PROFILES = ["sim-olt-netconf", "sim-olt-snmp", "sim-olt-cli"]
FAST = RetryPolicy(attempts=3, base=0.01, cap=0.05)


async def push_verified(driver: Driver[Any], name: str, services: list[ServiceIntent],
                        **kw: Any) -> PushResult:
    onts = [ONT]
    return await push(driver, load_profile(name), onts, services,
                      verify=verifier_for(driver, onts, services), **kw)


# ---- classification -------------------------------------------------------------------------
def _nc(tag: str, message: str, app_tag: str | None = None) -> NetconfRejectedError:
    return NetconfRejectedError([NetconfErrorInfo("application", tag, "error", message,
                                                  app_tag=app_tag)], b"<rpc-reply/>", host="h")


CASES: list[tuple[DriverError, ErrorClass, bool, str | None]] = [
    (ConnectError("refused", host="h"), ErrorClass.CONNECTION, False, None),
    (RefusedError("refused", host="h"), ErrorClass.CONNECTION, False, None),
    (DriverTimeoutError("no reply in 1 s", host="h"), ErrorClass.CONNECTION, False, None),
    (SessionLostError("closed", host="h"), ErrorClass.CONNECTION, False, None),
    (AuthenticationError("bad password", host="h"), ErrorClass.CONNECTION, False, None),
    (HostKeyError("key changed", host="h"), ErrorClass.CONNECTION, False, None),
    (NetconfLockDeniedError([NetconfErrorInfo("protocol", "lock-denied", "error",
                                              "Lock failed", info={"session-id": "7"})],
                            b"", host="h"), ErrorClass.REJECTED, True, "Lock failed"),
    (_nc("invalid-value", "S-VLAN 1500 not carried", "network-service-missing"),
     ErrorClass.CONFIGURATION_MISSING, False, "S-VLAN 1500 not carried"),
    (_nc("invalid-value", "network service missing: S-VLAN 9"),
     ErrorClass.CONFIGURATION_MISSING, False, "network service missing: S-VLAN 9"),
    (_nc("operation-failed", "policy says no"), ErrorClass.REJECTED, False, "policy says no"),
    (CliRejectedError("service-port 1", 7, "Failure: The VLAN does not exist", host="h"),
     ErrorClass.CONFIGURATION_MISSING, False, "Failure: The VLAN does not exist"),
    (CliRejectedError("ont add", 2, "Failure: policy says no\n", host="h"),
     ErrorClass.REJECTED, False, "Failure: policy says no"),
    (SnmpRejectedError("inconsistentValue", 3, "1.3.6.1.4.1.32473.1.1.3.1.4.2.3.1", host="h"),
     ErrorClass.CONFIGURATION_MISSING, False,
     "inconsistentValue (varbind 3 on 1.3.6.1.4.1.32473.1.1.3.1.4.2.3.1)"),
    (SnmpRejectedError("commitFailed", 1, "1.3.6.1.4.1.32473.1.1.2.1.2.2.3", host="h"),
     ErrorClass.REJECTED, False, "commitFailed (varbind 1 on 1.3.6.1.4.1.32473.1.1.2.1.2.2.3)"),
    (MismatchError("read back 1004, wrote 1005", host="h"), ErrorClass.MISMATCH, False,
     "read back 1004, wrote 1005"),
    (UnsupportedError("ssh on this device cannot roll back", host="h"),
     ErrorClass.CONFIGURATION_MISSING, False, None),
    (ProtocolError("bad framing", host="h"), ErrorClass.REJECTED, False, "bad framing"),
]


@pytest.mark.parametrize(("exc", "error_class", "retryable", "words"), CASES,
                         ids=[f"{type(c[0]).__name__}-{i}" for i, c in enumerate(CASES)])
def test_classify_maps_every_driver_error(exc: DriverError, error_class: ErrorClass,
                                          retryable: bool, words: str | None) -> None:
    found = classify(exc)
    assert isinstance(found, Classified)
    assert (found.error_class, found.retryable, found.device_words) == (
        error_class, retryable, words)
    assert found.message
    if isinstance(exc, AuthenticationError):
        assert "credentials" in found.message
    if isinstance(exc, HostKeyError):
        assert "known_hosts" in found.message
    if words is not None:
        assert words in found.message


# ---- one push per protocol ------------------------------------------------------------------
@pytest.mark.parametrize("name", PROFILES)
async def test_push_provisions_verifies_then_resend_is_unchanged(name: str, lab: Lab) -> None:
    olt = lab.olts["olt1"]
    async with make_driver(load_profile(name), lab, olt) as driver:
        first = await push_verified(driver, name, [SVC])
        assert first.outcome is Outcome.APPLIED, first.error
        assert first.error is None
        assert first.diff is not None
        assert not first.diff.empty
        assert first.payload
        assert first.payload_text
        ont = olt.onts[SERIAL]
        assert ont.state == OntState.OPERATIONAL
        assert [(a.c_vlan, a.s_vlan) for a in ont.applied.values()] == [(100, 1004)]
        running = olt.running

        again = await push_verified(driver, name, [SVC])
        assert again.outcome is Outcome.UNCHANGED, again.error
        assert again.diff is not None
        assert again.diff.empty
        assert olt.running.same(running)


@pytest.mark.parametrize("name", PROFILES)
async def test_dry_run_shows_payload_and_diff_and_changes_nothing(name: str, lab: Lab) -> None:
    olt = lab.olts["olt1"]
    before = olt.running
    async with make_driver(load_profile(name), lab, olt) as driver:
        result = await push_verified(driver, name, [SVC], dry_run=True)
        assert result.outcome is Outcome.DRY_RUN
        assert result.payload
        assert result.diff is not None
        assert not result.diff.empty
        assert "1004" in result.diff.text or "1004" in result.payload_text
        assert olt.running.same(before)
        assert not olt.view.services_of(VANI)
        # Nothing is left staged: a real push afterwards applies exactly the payload.
        assert (await push_verified(driver, name, [SVC])).outcome is Outcome.APPLIED


@pytest.mark.parametrize("name", PROFILES)
async def test_an_s_vlan_the_uplink_lacks_is_configuration_missing(name: str,
                                                                   lab: Lab) -> None:
    olt = lab.olts["olt1"]
    bad = dataclasses.replace(SVC, s_vlan=1500)
    async with make_driver(load_profile(name), lab, olt) as driver:
        result = await push_verified(driver, name, [bad])
    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.error_class is ErrorClass.CONFIGURATION_MISSING, result.error
    assert "1500" in result.error.message
    assert not result.error.retryable
    assert not olt.view.services_of(VANI)


@pytest.mark.parametrize("name", PROFILES)
async def test_a_refused_commit_is_rejected_with_the_devices_words(name: str,
                                                                   lab: Lab) -> None:
    olt = lab.olts["olt1"]
    olt.faults.refuse_commit = "change window closed by NOC"
    async with make_driver(load_profile(name), lab, olt) as driver:
        result = await push_verified(driver, name, [SVC])
    assert result.outcome is Outcome.FAILED
    assert result.stage is Stage.COMMIT
    assert result.error is not None
    assert result.error.error_class is ErrorClass.REJECTED
    assert result.error.device_words
    if name != "sim-olt-snmp":  # an SNMP error-status carries no text
        assert "change window closed by NOC" in result.error.device_words
    else:
        assert "commitFailed" in result.error.device_words
    assert not olt.view.services_of(VANI)


@pytest.mark.parametrize("name", ["sim-olt-snmp", "sim-olt-cli"])
async def test_the_read_back_reads_the_onts_own_row(name: str, lab: Lab) -> None:
    # The SNMP and CLI read-backs read the ONT's row (port and onu-id), not the OLT's whole
    # table: the same ONT and service expected at another onu-id are not found there.
    olt = lab.olts["olt1"]
    async with make_driver(load_profile(name), lab, olt) as driver:
        assert (await push_verified(driver, name, [SVC])).ok
        assert (await verifier_for(driver, [ONT], [SVC])()).ok
        elsewhere = dataclasses.replace(ONT, onu_id=ONT.onu_id + 1)
        result = await verifier_for(driver, [elsewhere],
                                    [dataclasses.replace(SVC, ont=elsewhere)])()
        assert not result.ok
        assert SERIAL in result.detail
        # SNMP: no registration of the serial in that row; CLI: no service-port on that ONT
        assert ("not reported by the OLT" if name == "sim-olt-snmp"
                else "does not report service") in result.detail


@pytest.mark.parametrize("name", PROFILES)
async def test_an_offline_ont_fails_verification_as_a_connection_error(name: str,
                                                                       lab: Lab) -> None:
    olt = lab.olts["olt1"]
    lab.find_ont(SERIAL).set_power(False)
    before = olt.running
    async with make_driver(load_profile(name), lab, olt) as driver:
        result = await push_verified(driver, name, [SVC], verify_timeout=0.3)
        assert result.outcome is Outcome.FAILED
        assert result.stage is Stage.VERIFY
        assert result.error is not None
        assert result.error.error_class is ErrorClass.CONNECTION
        assert SERIAL in result.error.message
        assert not result.error.retryable
        if driver.capabilities.rollback != "none":
            assert result.rolled_back
            assert olt.running.same(before), "the commit must be rolled back"
        else:  # a CLI has no undo: the configuration stays, waiting for the ONT
            assert not result.rolled_back
            assert olt.view.services_of(VANI)

        lab.find_ont(SERIAL).set_power(True)  # the ONT comes back: the resend applies
        result = await push_verified(driver, name, [SVC])
        assert result.ok, result.error


@pytest.mark.parametrize("name", ["sim-olt-netconf", "sim-olt-snmp"])
async def test_latency_past_the_timeout_is_a_connection_error(name: str, lab: Lab) -> None:
    olt = lab.olts["olt1"]
    driver = make_driver(load_profile(name), lab, olt)
    driver.timeout = 0.3
    if isinstance(driver, NetconfDriver):
        driver.target = dataclasses.replace(driver.target, timeout=0.3)
    else:
        assert isinstance(driver, SnmpDriver)
        driver.client.target = dataclasses.replace(driver.client.target, timeout=0.3)
    async with driver:
        olt.faults.latency = 1.0
        result = await with_retries(lambda: push_verified(driver, name, [SVC]), FAST)
        olt.faults.latency = 0.0
    assert result.outcome is Outcome.FAILED
    assert result.error is not None
    assert result.error.error_class is ErrorClass.CONNECTION
    assert not result.error.retryable
    assert result.attempts == 1
    await asyncio.sleep(1.0)  # let the late replies drain before the lab stops


async def test_wrong_credentials_need_an_operator(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    olt.faults.wrong_credentials = True
    driver = make_driver(load_profile("sim-olt-netconf"), lab, olt)
    result = await push_verified(driver, "sim-olt-netconf", [SVC])
    assert result.stage is Stage.CONNECT
    assert result.error is not None
    assert result.error.error_class is ErrorClass.CONNECTION
    assert "credentials" in result.error.message
    assert not result.error.retryable


async def test_a_held_lock_is_retried_with_backoff_then_reported(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    olt.faults.lock_held = True
    async with make_driver(load_profile("sim-olt-netconf"), lab, olt) as driver:
        result = await with_retries(lambda: push_verified(driver, "sim-olt-netconf", [SVC]),
                                    FAST)
        assert result.outcome is Outcome.FAILED
        assert result.attempts == 3
        assert result.error is not None
        assert result.error.retryable
        assert result.error.error_class is ErrorClass.REJECTED
        assert not olt.view.services_of(VANI)

        # Released while the agent backs off: a later attempt applies it.
        asyncio.get_running_loop().call_later(0.15, setattr, olt.faults, "lock_held", False)
        result = await with_retries(lambda: push_verified(driver, "sim-olt-netconf", [SVC]),
                                    RetryPolicy(attempts=20, base=0.05, cap=0.1))
        assert result.outcome is Outcome.APPLIED, result.error
        assert result.attempts > 1


# ---- the per-OLT queue ----------------------------------------------------------------------
class CountingNetconf(NetconfDriver):
    commits = 0

    async def commit(self, *, confirm_timeout: float | None = None) -> CommitResult:
        CountingNetconf.commits += 1
        return await super().commit(confirm_timeout=confirm_timeout)


def five_jobs() -> list[PushJob]:
    jobs = []
    onts = [ONT, OntIntent("olt1", "ALCLB2C3D4E5", "0/1/1", 4)]
    onts += [OntIntent("olt1", f"ABCD0000000{i}", "0/1/3", 10 + i) for i in range(3)]
    for i, ont in enumerate(onts):
        svc = dataclasses.replace(SVC, name=f"ord-{2000 + i}-internet", ont=ont,
                                  gemport_id=2100 + i, alloc_id=2100 + i)
        jobs.append(PushJob([ont], [svc]))
    return jobs


def counting_factory(lab: Lab, olt: Olt) -> CountingNetconf:
    return CountingNetconf(ssh_target(lab, olt, "netconf"))


async def test_the_queue_batches_five_onts_into_one_netconf_commit(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    CountingNetconf.commits = 0
    services_before = len(olt.view.services)
    async with OltQueue(lambda: counting_factory(lab, olt), load_profile("sim-olt-netconf"),
                        batch_window=0.2, verify=False,
                        limiter=asyncio.Semaphore(4)) as queue:
        futures = [queue.submit(job) for job in five_jobs()]
        results = await asyncio.gather(*futures)
    assert [r.outcome for r in results] == [Outcome.APPLIED] * 5
    assert {r.batched for r in results} == {5}
    assert CountingNetconf.commits == 1
    assert len(olt.view.services) == services_before + 5


async def test_a_bad_job_in_a_batch_does_not_hold_back_the_others(lab: Lab) -> None:
    olt = lab.olts["olt1"]
    jobs = five_jobs()[:3]
    bad_svc = dataclasses.replace(jobs[1].services[0], s_vlan=1500)
    jobs[1] = PushJob(jobs[1].onts, [bad_svc])
    async with OltQueue(lambda: make_driver(load_profile("sim-olt-netconf"), lab, olt),
                        load_profile("sim-olt-netconf"), batch_window=0.2,
                        verify=False) as queue:
        results = await asyncio.gather(*(queue.submit(j) for j in jobs))
    assert [r.outcome for r in results] == [Outcome.APPLIED, Outcome.FAILED, Outcome.APPLIED]
    assert results[1].error is not None
    assert results[1].error.error_class is ErrorClass.CONFIGURATION_MISSING


@pytest.mark.parametrize("name", ["sim-olt-snmp", "sim-olt-cli"])
async def test_the_queue_runs_jobs_concurrently_without_batching(name: str, lab: Lab) -> None:
    olt = lab.olts["olt1"]
    jobs = five_jobs()[:2]  # the two real ONTs: verified
    async with OltQueue(lambda: make_driver(load_profile(name), lab, olt), load_profile(name),
                        concurrency=2) as queue:
        results = await asyncio.gather(*(queue.submit(j) for j in jobs))
        assert queue.depth == 0
    assert all(r.outcome is Outcome.APPLIED for r in results), [r.error for r in results]
    assert {r.batched for r in results} == {1}
