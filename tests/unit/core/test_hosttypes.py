"""Host types: identical hosts are decided once and reported together."""

from __future__ import annotations

from qemu_errata.core.embedded import load_embedded_profile
from qemu_errata.core.hosttypes import group_hosts
from qemu_errata.core.pool import baseline, model_from_json
from qemu_errata.core.record import replace
from qemu_errata.testbed.fleet import synthetic_fleet


def test_hosts_that_differ_only_in_name_and_cpu_numbers_are_one_type() -> None:
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
    more_cpus = replace(
        n1,
        host="big",
        implementations=tuple(replace(i, cpus=(0, 1, 2, 3)) for i in n1.implementations),
    )
    other_kernel = load_embedded_profile("kvm-7.2-neoverse-n1")
    types = group_hosts([n1, more_cpus, other_kernel])
    # Names sorted within a type, so its label does not depend on the order given.
    assert [t.hosts for t in types] == [
        ("big", "neoverse-n1-linux-6.12"),
        ("neoverse-n1-linux-7.2",),
    ]
    assert types[0].describe() == "2 hosts like big: Arm Neoverse-N1 r4p1, Linux 6.12"
    assert types[1].describe() == "1 host neoverse-n1-linux-7.2: Arm Neoverse-N1 r4p1, Linux 7.2"


def test_any_deciding_difference_makes_another_type() -> None:
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
    variants = [
        replace(n1, host="timer", timer_frequency_hz=1_000_000_000),
        replace(n1, host="masks", writable_masks=None),
        replace(n1, host="gic", gic_registers={"ICC_CTLR_EL1": 0}),
        replace(
            n1,
            host="revidr",
            implementations=tuple(replace(i, revidr=1) for i in n1.implementations),
        ),
    ]
    types = group_hosts([n1, *variants])
    assert len(types) == 5
    # They read alike (one CPU, one kernel): each names what separates it from its nearest.
    words = [t.describe() for t in types]
    assert len(set(words)) == 5
    assert words[1] == "1 host timer: Arm Neoverse-N1 r4p1, Linux 6.12, timer 1000 MHz"
    assert words[2] == "1 host masks: Arm Neoverse-N1 r4p1, Linux 6.12, other writable masks"
    assert words[4] == "1 host revidr: Arm Neoverse-N1 r4p1, Linux 6.12, REVIDR 0x1"


def test_a_fleet_model_is_computed_per_type_and_lists_every_host() -> None:
    fleet = synthetic_fleet(hosts=1000, types=4)
    model = baseline(fleet)
    assert len(model.hosts) == 1000
    assert [len(g.hosts) for g in model.host_groups] == [250, 250, 250, 250]
    # Two REVIDRs of each part: each type names its own.
    assert model.host_groups[0].description == (
        "250 hosts like rack000-h00000: Arm Neoverse-N1 r4p1, Linux 6.12, REVIDR 0x0"
    )
    assert model.host_writes["rack015-h00999"] == model.host_groups[3].writes
    assert len(model.target_implementations) == 4
    # Losses name a type by its first host, not 250 hosts.
    assert all(len(loss.host_values) <= 4 for loss in model.losses)
    assert model_from_json(model.to_json(), "test").host_groups == model.host_groups


def test_a_model_file_keys_losses_by_host_names_and_reads_back_its_words() -> None:
    n1 = load_embedded_profile("kvm-6.12-neoverse-n1")
    fleet = [replace(n1, host=f"rack1-n1-h{i}") for i in range(3)]
    model = baseline([*fleet, load_embedded_profile("kvm-6.12-cortex-a76")])
    document = model.to_json()
    # The file's format says "host to hex value": the type's first host, not its label.
    assert {h for loss in document["losses"] for h in loss["host_values"]} == {"rack1-n1-h0"}
    assert model.losses[0].explain().endswith("rack1-n1-h0 (+2 alike) has SSBS2 (0x2)")
    read_back = model_from_json(document, "pool.json")
    assert read_back.losses == model.losses
    # A model of 0.3.0 keyed them by label: it reads to the same losses.
    for loss in document["losses"]:
        loss["host_values"] = {"rack1-n1-h0 (+2 alike)": loss["host_values"]["rack1-n1-h0"]}
    assert model_from_json(document, "old.json").losses == model.losses


def test_a_model_file_of_before_types_still_reads() -> None:
    model = model_from_json(
        {
            "format": "qemu-errata/pool-model/1",
            "hosts": ["a", "b"],
            "id_registers": {},
            "target_implementations": [{"midr": "0x414fd0c1", "revidr": None, "aidr": None}],
            "host_writes": {"a": ["ID_AA64PFR1_EL1"], "b": []},
        },
        "old.json",
    )
    assert model.hosts == ("a", "b")
    assert model.host_writes == {"a": ("ID_AA64PFR1_EL1",), "b": ()}
