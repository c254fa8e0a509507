// Package e2etest holds meshsession's end-to-end tests and the revocation
// propagation benchmark: real HTTP through the dev proxy (e2e/devproxy)
// hosting the real plugin.wasm with 4 worker VMs, the demo app as the
// upstream, and a real sessionsvc (in process, restartable on the same
// address and database) on SQLite and on PostgreSQL.
//
// plugin.wasm is read from MESHSESSION_PLUGIN_WASM or <repo>/plugin.wasm;
// when it is missing the tests skip, or fail under CI=true or
// MESHSESSION_REQUIRE_WASM=1. PostgreSQL is MESHSESSION_TEST_POSTGRES (a
// fresh schema per run; skipped when unreachable unless CI=true or
// MESHSESSION_REQUIRE_POSTGRES=1).
//
//	go test ./e2e/e2etest/
//	go test ./e2e/e2etest/ -run '^$' -bench Propagation
package e2etest
