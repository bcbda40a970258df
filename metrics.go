package tctoken

import (
	"errors"
	"fmt"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/tctoken/tctoken/hooks"
)

// WithMetrics registers the plugin's Prometheus collectors with reg:
//
//	tctoken_tokens_attached_total{kind}           1:1 sends by what was attached (tctoken, cstoken, nothing)
//	tctoken_send_refused_total{diagnosis}         463s by diagnosis
//	tctoken_issuances_total{kind,result}          issue or reissue, sent or failed, per contact
//	tctoken_prunes_total{result}                  prunes, ok or failed
//	tctoken_pruned_rows_total                     rows the prunes removed
//	tctoken_db_errors_total{operation}            failed database operations
//	tctoken_timelock_accounts                     accounts under a reach-out timelock now
//	tctoken_new_chat_cap_accounts{status}         accounts by new-chat cap status (NONE ... CAPPED, other)
//
// No label carries a JID. Several plugins (one per account) may register
// with one registry: they share the collectors. A bridge that does not use
// this option registers nothing and pays one nil check per count.
func WithMetrics(reg prometheus.Registerer) Option {
	return Option{func(cfg *hooks.Config) {
		m, err := registerMetrics(reg)
		if err != nil {
			cfg.OptionErr = errors.Join(cfg.OptionErr, fmt.Errorf("register metrics: %w", err))
			return
		}
		cfg.Observer = &accountMetrics{metrics: m}
	}}
}

// metrics are the collectors, shared by every plugin on one registry.
type metrics struct {
	attached  *prometheus.CounterVec
	refused   *prometheus.CounterVec
	issued    *prometheus.CounterVec
	prunes    *prometheus.CounterVec
	pruned    prometheus.Counter
	dbErrors  *prometheus.CounterVec
	timelocks prometheus.Gauge
	capped    *prometheus.GaugeVec
}

func registerMetrics(reg prometheus.Registerer) (*metrics, error) {
	if reg == nil {
		return nil, errors.New("no registry")
	}
	m := &metrics{
		attached: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tctoken_tokens_attached_total", Help: "1:1 sends through the plugin, by what was attached.",
		}, []string{"kind"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tctoken_send_refused_total", Help: "1:1 sends the server refused with 463, by diagnosis.",
		}, []string{"diagnosis"}),
		issued: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tctoken_issuances_total", Help: "Contacts our token was issued (issue) or reissued (reissue) to, by result.",
		}, []string{"kind", "result"}),
		prunes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tctoken_prunes_total", Help: "Prunes of expired tokens, by result.",
		}, []string{"result"}),
		pruned: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "tctoken_pruned_rows_total", Help: "Rows the prunes removed.",
		}),
		dbErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "tctoken_db_errors_total", Help: "Failed database operations, by operation.",
		}, []string{"operation"}),
		timelocks: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "tctoken_timelock_accounts", Help: "Accounts under a reach-out timelock now.",
		}),
		capped: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "tctoken_new_chat_cap_accounts", Help: "Accounts by the new-chat cap status the server last reported.",
		}, []string{"status"}),
	}
	// A second plugin on the same registry takes over the collectors the
	// first registered.
	var errs []error
	share := func(c prometheus.Collector, set func(prometheus.Collector)) {
		err := reg.Register(c)
		var already prometheus.AlreadyRegisteredError
		switch {
		case errors.As(err, &already):
			set(already.ExistingCollector)
		case err != nil:
			errs = append(errs, err)
		}
	}
	share(m.attached, func(c prometheus.Collector) { m.attached = c.(*prometheus.CounterVec) })
	share(m.refused, func(c prometheus.Collector) { m.refused = c.(*prometheus.CounterVec) })
	share(m.issued, func(c prometheus.Collector) { m.issued = c.(*prometheus.CounterVec) })
	share(m.prunes, func(c prometheus.Collector) { m.prunes = c.(*prometheus.CounterVec) })
	share(m.pruned, func(c prometheus.Collector) { m.pruned = c.(prometheus.Counter) })
	share(m.dbErrors, func(c prometheus.Collector) { m.dbErrors = c.(*prometheus.CounterVec) })
	share(m.timelocks, func(c prometheus.Collector) { m.timelocks = c.(prometheus.Gauge) })
	share(m.capped, func(c prometheus.Collector) { m.capped = c.(*prometheus.GaugeVec) })
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	// Every diagnosis shows, at zero, before the first 463.
	for _, d := range hooks.Diagnoses() {
		m.refused.WithLabelValues(d.String())
	}
	for _, status := range capStatusLabels {
		m.capped.WithLabelValues(status)
	}
	return m, nil
}

// accountMetrics is one plugin's view: it remembers whether its account is
// under a timelock, so that the shared gauge counts accounts.
type accountMetrics struct {
	*metrics
	mu       sync.Mutex
	timelock bool
	// capStatus is the label this account counts under, "" for none.
	capStatus string
}

func (m *accountMetrics) TokenAttached(kind hooks.Attach) {
	m.attached.WithLabelValues(kind.String()).Inc()
}

func (m *accountMetrics) Refused(d hooks.Diagnosis) {
	m.refused.WithLabelValues(d.String()).Inc()
}

func (m *accountMetrics) Issued(kind string, ok bool, contacts int) {
	result := "sent"
	if !ok {
		result = "failed"
	}
	m.issued.WithLabelValues(kind, result).Add(float64(contacts))
}

func (m *accountMetrics) Pruned(rows int64, failed bool) {
	if failed {
		m.prunes.WithLabelValues("failed").Inc()
		return
	}
	m.prunes.WithLabelValues("ok").Inc()
	m.pruned.Add(float64(rows))
}

func (m *accountMetrics) DBError(op string) {
	m.dbErrors.WithLabelValues(op).Inc()
}

func (m *accountMetrics) Timelock(inForce bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if inForce == m.timelock {
		return
	}
	m.timelock = inForce
	if inForce {
		m.timelocks.Inc()
	} else {
		m.timelocks.Dec()
	}
}

// capStatusLabels are the statuses WhatsApp Web knows, and "other" for one
// added since: the label set stays bounded whatever the server sends.
var capStatusLabels = []string{
	string(hooks.CapNone), string(hooks.CapFirstWarning), string(hooks.CapSecondWarning), string(hooks.CapCapped), "other",
}

func capStatusLabel(status string) string {
	if status == "" {
		return ""
	}
	for _, known := range capStatusLabels[:len(capStatusLabels)-1] {
		if status == known {
			return status
		}
	}
	return "other"
}

func (m *accountMetrics) NewChatCap(status string) {
	label := capStatusLabel(status)
	m.mu.Lock()
	defer m.mu.Unlock()
	if label == m.capStatus {
		return
	}
	if m.capStatus != "" {
		m.capped.WithLabelValues(m.capStatus).Dec()
	}
	if label != "" {
		m.capped.WithLabelValues(label).Inc()
	}
	m.capStatus = label
}
