package tctoken_test

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.mau.fi/util/dbutil"

	"github.com/tctoken/tctoken"
	"github.com/tctoken/tctoken/wamock"
)

// TestMetrics: the counts read back from the bridge's registry agree with
// what happened on the wire, and no label carries a JID.
func TestMetrics(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *dbutil.Database) {
		reg := prometheus.NewPedanticRegistry()
		w := newWorld(t, db, tctoken.WithMetrics(reg)).connect()
		d := w.collectDiagnoses()
		w.srv.SetMessageRule(wamock.RequireToken())
		alice := w.srv.AddContact(wamock.ContactOptions{})
		bob := w.srv.AddContact(wamock.ContactOptions{})
		w.receiveToken(alice.LID(), "alice-token")
		if _, err := w.plugin.SendMessage(w.ctx, alice.LID(), text("hi")); err != nil {
			t.Fatal(err)
		}
		refused := w.send463(d, bob.LID(), tctoken.DiagnosisNoSalt)
		eventually(t, "the connect's prune counted", func() bool {
			return testutil.ToFloat64(metric(t, reg, "tctoken_prunes_total", "result", "ok")) >= 1
		})

		if got := testutil.ToFloat64(metric(t, reg, "tctoken_tokens_attached_total", "kind", "tctoken")); got != 1 {
			t.Errorf("tctoken attached %v times, want 1", got)
		}
		if got := testutil.ToFloat64(metric(t, reg, "tctoken_tokens_attached_total", "kind", "nothing")); got != 1 {
			t.Errorf("nothing attached %v times, want 1", got)
		}
		if got := testutil.ToFloat64(metric(t, reg, "tctoken_send_refused_total", "diagnosis", "no_salt")); got != 1 {
			t.Errorf("no_salt refusals %v, want 1", got)
		}
		if got := testutil.ToFloat64(metric(t, reg, "tctoken_send_refused_total", "diagnosis", "timelock")); got != 0 {
			t.Errorf("timelock refusals %v, want 0", got)
		}
		if refused.Recovery.Reissued {
			eventually(t, "the reissue counted", func() bool {
				return testutil.ToFloat64(metric(t, reg, "tctoken_issuances_total", "kind", "reissue", "result", "sent")) == 1
			})
		}
		if got := testutil.ToFloat64(metric(t, reg, "tctoken_timelock_accounts")); got != 0 {
			t.Errorf("timelock gauge %v", got)
		}
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		for _, family := range families {
			for _, m := range family.GetMetric() {
				for _, label := range m.GetLabel() {
					if strings.Contains(label.GetValue(), "@") || strings.Contains(label.GetValue(), alice.PN().User) {
						t.Errorf("%s carries a JID: %s=%s", family.GetName(), label.GetName(), label.GetValue())
					}
				}
			}
		}
		// A second plugin (another account) on the same registry shares
		// the collectors instead of failing.
		other := newBareWorld(t, db, []wamock.Option{wamock.WithOwnPN("15550000002"), wamock.WithOwnLID("100000000000002")}, tctoken.WithMetrics(reg))
		other.start()
	})
}

// metric finds one series of a collector registered with reg, by name and
// label pairs.
func metric(t *testing.T, reg *prometheus.Registry, name string, labels ...string) prometheus.Collector {
	t.Helper()
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		families, err := reg.Gather()
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{}
		for i := 0; i+1 < len(labels); i += 2 {
			want[labels[i]] = labels[i+1]
		}
		for _, family := range families {
			if family.GetName() != name {
				continue
			}
			for _, m := range family.GetMetric() {
				match := len(m.GetLabel()) == len(want)
				for _, label := range m.GetLabel() {
					match = match && want[label.GetName()] == label.GetValue()
				}
				if !match {
					continue
				}
				value := m.GetCounter().GetValue()
				if m.GetGauge() != nil {
					value = m.GetGauge().GetValue()
				}
				ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "read back", nil, nil), prometheus.UntypedValue, value)
				return
			}
		}
		ch <- prometheus.MustNewConstMetric(prometheus.NewDesc(name, "absent", nil, nil), prometheus.UntypedValue, 0)
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
