"""What the commands print: each output's format name, its JSON and its text, side by side.

A layer between the core (which decides) and the commands (which read input
and print): one module per output, each holding its ``*_FORMAT`` name (the
JSON Schema in data/schemas has the same name), the function building its
JSON document and the one building its lines for a person. Documents written
to disk (host profiles, pool models) are the core's own formats, read back by
the core; a report never adds a key to them.

    baseline        baseline --json, the model in words, baseline-refusal/1
    check           check/1
    errata          errata/1
    guest_view      guest-view/1
    kvm_validation  kvm-validation/1
    plan            plan/1, plan-refusal/1, scheduler labels and Nova provider config
    plan_picture    plan --picture (SVG)
    qemu_check      qemu-check/1
    render          render/1
    show            show (text only)
    verify          verify --json (also inside qemu-check/1)
    blockers, errata_cost  parts several reports share
"""
