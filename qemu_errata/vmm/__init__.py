"""What a VMM is given to present a pool model.

A straight pipeline, each step calling only the one below it::

    PoolModel (core.pool)
        │  dialects.vmm_config          model → VmmConfig: CPU model, its properties,
        ▼                               machine properties, notes (names.py: QEMU's names)
    VmmConfig
        │  args.qemu_arguments          VmmConfig → argv (``render --as args``)
        │  args.commandline_arguments   VmmConfig → the arguments beyond ``-cpu``
        ▼
    QEMU arguments
        │  domain_xml.apply_model       VmmConfig + its arguments + a domain → domain XML,
        ▼                               with pool_element.pool_element(model) under <metadata>
    domain XML

On top, libvirt_domain drives the steps: ``apply_to_domain_xml`` reads a domain
document, lets its type choose the dialect and runs them; ``apply_to_libvirt``
does that to a defined domain and redefines it. Beside the pipeline, qmp.py
reads a running QEMU (its capabilities for dialects.check_supported, its guest
for verify.compare). Every XML document is parsed by xml_parser.parse_xml, the
one hardened lxml parser; the pool element's namespace is core.pool_namespace's.
"""
