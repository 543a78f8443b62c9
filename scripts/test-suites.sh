#!/bin/sh
# npm run test:suites: the parallel lane, then the serial lane (jest.config.js), each with the same
# extra arguments. Both always run, so a failure in the first does not hide the second's results;
# the exit status is non-zero if either failed. POSIX sh: CI runs it through `npm test`.
status=0
TEST_LANE=parallel npm run test:jest -- --testPathIgnorePatterns=/test/e2e/ --maxWorkers=2 "$@" || status=1
TEST_LANE=serial npm run test:jest -- --testPathIgnorePatterns=/test/e2e/ --maxWorkers=1 "$@" || status=1
exit "$status"
