#!/bin/bash
# Example lab that always fails (for demos and tests of the FAILED path).
echo "starting lab for $1 in $2"
echo "cannot allocate the lab: out of licences" >&2
exit 3
