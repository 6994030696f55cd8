"""What a VMM is given to present a pool model.

A straight pipeline, each step calling only the one below::

    PoolModel (core.pool)
        │  dialects.vmm_config              model → VmmConfig: CPU model, its properties,
        ▼                                   machine properties, notes (names.py: QEMU's names)
    VmmConfig
        │  args.qemu_arguments              VmmConfig → argv (``render --as args``)
        │  args.commandline_arguments       VmmConfig → the arguments beyond ``-cpu``
        ▼
    QEMU arguments
        │  domain_xml.apply_model           VmmConfig + arguments + domain → domain XML;
        ▼                                   pool_element.pool_element(model) under <metadata>
    domain XML
        │  libvirt_domain.apply_to_libvirt  redefine a libvirt domain with it
        ▼
    a defined libvirt domain

``libvirt_domain.apply_to_domain_xml`` runs the steps on one domain document
(the domain's type chooses the dialect). Beside the pipeline: qmp.py reads a
running QEMU (capabilities for dialects.check_supported, the guest for
verify.compare). Every XML document is parsed by xml_parser.parse_xml, the
one hardened lxml parser; the pool element's namespace is core.pool_namespace's.
"""
