package service

import "github.com/meshsession/meshsession/sessionsvc/server"

func hashForTest(tok string) string { return server.HashAdminToken(tok) }
