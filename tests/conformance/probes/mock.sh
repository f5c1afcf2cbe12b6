#!/bin/sh
# The --probe hook for the mock plugin: `mock.sh <uri> <domain> <snapshot>`.
# The mock keeps snapshot metadata only (its store has no disk or memory contents), so the
# hypervisor side never holds a payload: the answer is always "absent", and the suite skips its
# payload cases with that reason instead of passing them vacuously.
echo absent
