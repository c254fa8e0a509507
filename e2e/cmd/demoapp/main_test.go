package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/meshsession/meshsession/internal/testenv"
)

func TestParseOptions(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		env     map[string]string
		want    options
		wantErr string
	}{
		{name: "defaults", want: options{addr: ":3000", secret: "meshsession-demo-secret",
			tokenTTL: 30 * time.Minute, refreshTTL: 168 * time.Hour, sid: true}},
		{name: "env", env: map[string]string{"DEMOAPP_ADDR": "127.0.0.1:3001", "JWT_SECRET": "s",
			"TOKEN_TTL": "1m", "REFRESH_TTL": "2h", "DEMO_SID": "false", "LOG_LEVEL": "debug"},
			want: options{addr: "127.0.0.1:3001", secret: "s", tokenTTL: time.Minute, refreshTTL: 2 * time.Hour, logLevel: -4}},
		{name: "flags override env", env: map[string]string{"TOKEN_TTL": "1m", "DEMO_SID": "false"},
			args: []string{"-addr", ":4000", "-token-ttl", "5m", "-sid=true", "-secret", "x"},
			want: options{addr: ":4000", secret: "x", tokenTTL: 5 * time.Minute, refreshTTL: 168 * time.Hour, sid: true}},
		{name: "bad TOKEN_TTL", env: map[string]string{"TOKEN_TTL": "soon"}, wantErr: "TOKEN_TTL"},
		{name: "bad REFRESH_TTL", env: map[string]string{"REFRESH_TTL": "1x"}, wantErr: "REFRESH_TTL"},
		{name: "bad DEMO_SID", env: map[string]string{"DEMO_SID": "maybe"}, wantErr: "DEMO_SID"},
		{name: "bad LOG_LEVEL", env: map[string]string{"LOG_LEVEL": "loud"}, wantErr: "LOG_LEVEL"},
		{name: "negative ttl", args: []string{"-token-ttl", "-1m"}, wantErr: "must be positive"},
		{name: "empty secret", args: []string{"-secret", ""}, wantErr: "secret must not be empty"},
		{name: "unknown flag", args: []string{"-nope"}, wantErr: "flag provided but not defined"},
		{name: "extra args", args: []string{"extra"}, wantErr: "unexpected arguments"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseOptions(tt.args, testenv.Getenv(tt.env), io.Discard)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestRunPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	err = run(context.Background(), []string{"-addr", ln.Addr().String()}, testenv.Getenv(nil), io.Discard)
	require.ErrorContains(t, err, "listen")
	assert.ErrorContains(t, err, "address already in use")
}

func TestRunServesAndShutsDown(t *testing.T) {
	// Reserve a free port, then hand it to run.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())

	ctx, cancel := context.WithCancel(context.Background())
	var logs syncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-addr", addr}, testenv.Getenv(nil), &logs) }()

	var resp *http.Response
	require.Eventually(t, func() bool {
		resp, err = http.Post("http://"+addr+"/api/auth/local", "application/json",
			strings.NewReader(`{"identifier":"alice","password":"alice-password"}`))
		return err == nil
	}, 5*time.Second, 20*time.Millisecond)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, string(body))
	assert.Contains(t, string(body), `"refreshToken"`)

	cancel()
	testenv.Returned(t, done, 10*time.Second, "run did not return after cancel")
	assert.Contains(t, logs.String(), "demoapp listening")
	assert.Contains(t, logs.String(), "path=/api/auth/local")
}

// syncBuffer is a goroutine-safe bytes.Buffer for captured logs.
type syncBuffer = testenv.SyncBuffer
