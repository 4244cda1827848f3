"""HLS verification case study: a kernel suite, Chrysalis-taxonomy bug injectors, a differential
C-simulation oracle with sanitizers, a pragma lint, dataset export and detector evaluation.

Guide and measured results: docs/hlsbugs.md.
"""
