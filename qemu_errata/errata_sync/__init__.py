"""Derive the errata facts from the Debian kernel packages guests run (scripts/errata-sync).

``csource``, ``kernel_facts``, ``debian`` and ``render`` are pure (text in, facts out);
``sources`` downloads and unpacks the pinned packages; ``main`` is the command.
"""
