"""The mobility law as a compiled artifact for DDD codes: a plain-tensor contract (dislomob.export.contract),
a pure-torch module on the ensemble's own weights (dislomob.export.module), its AOTInductor package
(dislomob.export.package) and the check of the C++ example against the Python law (dislomob.export.cpp_check).
docs/export_contract.md is the contract for the people who link it."""
