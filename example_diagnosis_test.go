package tctoken_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.mau.fi/util/dbutil"
	"go.mau.fi/whatsmeow"
	"go.mau.fi/whatsmeow/proto/waE2E"
	"go.mau.fi/whatsmeow/types"
	"google.golang.org/protobuf/proto"

	"github.com/tctoken/tctoken"
)

// A 463 from Plugin.SendMessage is a *tctoken.SendError that says why.
// Under a reach-out timelock, retrying makes it worse: wait for its end.
func ExampleSendError() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	ctx := context.Background()
	to := types.NewJID("15551234567", types.DefaultUserServer)
	_, err := plugin.SendMessage(ctx, to, &waE2E.Message{Conversation: proto.String("hello")})
	var refused *tctoken.SendError
	switch {
	case errors.As(err, &refused) && refused.Diagnosis == tctoken.DiagnosisTimelock:
		fmt.Println("account restricted from new contacts until", refused.Timelock.Ends)
	case errors.As(err, &refused):
		fmt.Println("refused:", refused.Diagnosis, refused.Diagnosis.Hint())
	case err != nil:
		fmt.Println("send failed:", err)
	}
}

// The same diagnosis reaches the bridge's event handler, beside whatsmeow's
// own events, and so does a change of the timelock.
func ExampleSendDiagnosed() {
	var client *whatsmeow.Client // the client the plugin is enabled on
	client.AddEventHandler(func(evt any) {
		switch evt := evt.(type) {
		case *tctoken.SendDiagnosed:
			fmt.Println(evt.MessageID, "to", evt.Contact, "refused:", evt.Diagnosis)
		case *tctoken.TimelockChanged:
			fmt.Println("timelock active:", evt.State.Active, "ends:", evt.State.Ends)
		}
	})
}

// Explain says what the next message to a contact would carry, and why.
func ExamplePlugin_Explain() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	e, err := plugin.Explain(context.Background(), types.NewJID("15551234567", types.DefaultUserServer))
	if err != nil {
		panic(err)
	}
	fmt.Println(e.Attach, e.Cause, "token valid:", e.TokenValid, "if refused:", e.IfRefused)
}

// Timelock is what is known of the account's reach-out timelock.
func ExamplePlugin_Timelock() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	if tl := plugin.Timelock(); tl.InForce(time.Now()) {
		fmt.Println("first contacts are refused; known since", tl.Updated, "from", tl.Source)
	}
}

// BackfillSalt re-reads the salt now, within its rate limit; the plugin
// also does it on every connect.
func ExamplePlugin_BackfillSalt() {
	var plugin *tctoken.Plugin // from tctoken.Enable
	if result := plugin.BackfillSalt(context.Background()); result == tctoken.BackfillFound {
		fmt.Println("the salt is known now")
	} else {
		fmt.Println("salt backfill:", result)
	}
}

// A bridge that wants the message resent once when the contact's token
// arrives opts in; the default only reissues our token.
func ExampleWithRecovery() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	_, _ = tctoken.Enable(context.Background(), client, db, tctoken.WithRecovery(tctoken.Recovery{
		Reissue:           true,
		SubscribePresence: true,
		BackfillSalt:      true,
		Resend:            true,
		ResendWait:        5 * time.Second,
	}))
}

// DefaultRecovery diagnoses, then reissues our token once per contact and
// bucket.
func ExampleDefaultRecovery() {
	fmt.Printf("%+v\n", tctoken.DefaultRecovery())
	// Output: {Reissue:true SubscribePresence:false BackfillSalt:false Resend:false ResendWait:0s GuardFirstContacts:false}
}

// Sessions without a salt re-read app state once per interval.
func ExampleWithSaltBackfillInterval() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	_, _ = tctoken.Enable(context.Background(), client, db, tctoken.WithSaltBackfillInterval(6*time.Hour))
}

// The plugin's counters go to the bridge's own registry.
func ExampleWithMetrics() {
	var client *whatsmeow.Client
	var db *dbutil.Database
	reg := prometheus.NewRegistry()
	if _, err := tctoken.Enable(context.Background(), client, db, tctoken.WithMetrics(reg)); err != nil {
		panic(err)
	}
	http.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
}
