package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/tctoken/tctoken/wamock"
)

// TestControlTimelock: POST /v1/timelock sets the state the timelock query
// answers from; a negative end is refused.
func TestControlTimelock(t *testing.T) {
	svc := startTestService(t)
	ends := time.Now().Add(24 * time.Hour).Unix()
	var out map[string]any
	mustCall(t, svc, "POST", "/v1/timelock", timelockIn{Active: true, Ends: ends, EnforcementType: "RESTRICT_ALL_COMPANIONS"}, &out)
	want := wamock.ReachoutTimelock{Active: true, Ends: time.Unix(ends, 0), EnforcementType: "RESTRICT_ALL_COMPANIONS"}
	if got := svc.srv.ReachoutTimelock(); got.Active != want.Active || !got.Ends.Equal(want.Ends) || got.EnforcementType != want.EnforcementType {
		t.Fatalf("server state %+v, want %+v (answer %v)", got, want, out)
	}
	mustCall(t, svc, "POST", "/v1/timelock", timelockIn{}, nil)
	if got := svc.srv.ReachoutTimelock(); got.Active || !got.Ends.IsZero() {
		t.Fatalf("server state %+v, want none", got)
	}
	if got := call(t, svc, "POST", "/v1/timelock", timelockIn{Active: true, Ends: -1}, nil); got != http.StatusBadRequest {
		t.Fatalf("a negative end: status %d, want 400", got)
	}
}
