#!/bin/bash
echo "trying $2"
echo "no capacity left" >&2
exit 7
