package compat

import (
	"testing"

	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/store"
	waLog "go.mau.fi/whatsmeow/util/log"
)

// BenchmarkTimelockProbe is the once-per-process cost of learning the
// timelock event at the first Enable, against whatsmeow.NewClient alone,
// which every bridge pays per account.
func BenchmarkTimelockProbe(b *testing.B) {
	b.Run("probe", func(b *testing.B) {
		for b.Loop() {
			probeTimelockEvents()
		}
	})
	b.Run("whatsmeow.NewClient", func(b *testing.B) {
		for b.Loop() {
			whatsmeow.NewClient(&store.Device{Log: waLog.Noop}, waLog.Noop)
		}
	})
}

// BenchmarkDetect is the per-Enable cost once the types are known.
func BenchmarkDetect(b *testing.B) {
	cli := whatsmeow.NewClient(&store.Device{Log: waLog.Noop}, waLog.Noop)
	for b.Loop() {
		Detect(cli)
	}
}
