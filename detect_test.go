package tctoken_test

import (
	"encoding/json"
	"strings"
	"testing"

	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow/store"
)

// whatsmeowsUnderTest are the whatsmeows the suite runs on (go.mod's, and
// the newer one through .ci/whatsmeow-head), told apart by the WhatsApp Web
// version each has compiled in: whatsmeow bumps it with its releases, so
// the test names its whatsmeow without asking the plugin's own detection.
// Each has the detection line Enable must log on it.
var whatsmeowsUnderTest = map[string]struct {
	name string
	line map[string]any
}{
	"2.3000.1031080782": {"whatsmeow 2025-12 (11cf47c6)", map[string]any{
		"native":           false,
		"sender_map":       "none",
		"salt_store":       "none",
		"sender_timestamp": "none",
		"timelock_event":   "none",
		"history_salt":     "unknown field HistorySync.19",
		"app_state_salt":   "unknown field SyncActionValue.80.1",
	}},
	"2.3000.1045649367": {"whatsmeow 33cfac51", map[string]any{
		"native":           true,
		"sender_map":       "DangerousInternals.GetTCTokenSenderTS",
		"salt_store":       "Device.NCTSalt",
		"sender_timestamp": "PrivacyToken.SenderTimestamp",
		"timelock_event":   "*events.NotifyAccountReachoutTimelock",
		"history_salt":     "HistorySync.nctSalt",
		"app_state_salt":   "SyncActionValue.nctSaltSyncAction.salt",
	}},
}

const detectedMessage = "Detected what this whatsmeow does by itself"

// TestEnableLogsWhatsmeowDetection: Enable on the real client logs one line
// naming what this whatsmeow does by itself, and no feature in a shape the
// plugin does not know.
func TestEnableLogsWhatsmeowDetection(t *testing.T) {
	version := store.GetWAVersion().String()
	known, ok := whatsmeowsUnderTest[version]
	if !ok {
		t.Fatalf("a whatsmeow the suite does not know (WhatsApp Web %s): add the detection line it must log", version)
	}
	t.Logf("running on %s", known.name)
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		w := newWorld(t, db).connect()
		var lines []map[string]any
		for _, raw := range strings.Split(w.logs.String(), "\n") {
			var line map[string]any
			if json.Unmarshal([]byte(raw), &line) != nil {
				continue
			}
			switch line["message"] {
			case detectedMessage:
				lines = append(lines, line)
			case "whatsmeow has a feature in a shape the plugin does not know":
				t.Errorf("on %s: %s", known.name, raw)
			}
		}
		if len(lines) != 1 {
			t.Fatalf("on %s: %d detection lines, want 1", known.name, len(lines))
		}
		for field, want := range known.line {
			if got := lines[0][field]; got != want {
				t.Errorf("on %s: %s = %v, want %v", known.name, field, got, want)
			}
		}
		if w.plugin.NativeTokens() != known.line["native"] {
			t.Errorf("on %s: NativeTokens() = %v, the line says %v", known.name, w.plugin.NativeTokens(), known.line["native"])
		}
	})
}
