package main

import (
	"fmt"
	"io"
	"strings"
	"sync"

	waBinary "go.mau.fi/whatsmeow/binary"
	"go.mau.fi/whatsmeow/types"

	"github.com/tctoken/tctoken"
)

// demoResult is what the demo saw, kept for its own checks and for tests,
// which assert on these stanzas rather than on the printed story.
type demoResult struct {
	DBPath string // set when --keep-db kept the database
	Salt   []byte // the NCT salt our fake phone shared

	Alice, Bob contactIDs

	First  exchange // a. first message to Alice, through the plugin
	Bypass exchange // a. first message to Bob, through whatsmeow alone
	// Native is set when whatsmeow attaches and issues by itself (versions
	// after 2025-12): the bypassed message then carries whatsmeow's own
	// cstoken, from the plugin's salt store, and is accepted.
	Native bool

	Issue *waBinary.Node // c. the privacy IQ that issued our token to Alice
	// IssuesInBucket are all privacy IQs naming Alice from the first send to
	// the end of the reply, all in one sender bucket.
	IssuesInBucket []*waBinary.Node

	AliceToken  []byte // b. the token Alice issued to us
	AliceTokenT int64
	Reply       exchange // b. our reply, which carries it

	Reissue *waBinary.Node // d. the privacy IQ after Alice reinstalled

	// TimelockSteps are the diagnoses of the first messages refused under
	// the timelock (Carol's, then Dave's); TimelockError is the last error.
	TimelockSteps []string
	TimelockError *tctoken.SendError

	Pruned     int64 // e. what PruneExpired removed five weeks later
	TokenAfter []byte

	Checks []check
}

// contactIDs are a contact's two addresses.
type contactIDs struct {
	PN, LID types.JID
}

// exchange is one message and the server's answer to it.
type exchange struct {
	Message *waBinary.Node // what our client sent
	Ack     *waBinary.Node // the server's <ack>
	Err     error          // what SendMessage returned
}

// check is one fact the demo expects.
type check struct {
	Fact   string
	OK     bool
	Detail string
}

// Failed lists the checks that did not hold.
func (r *demoResult) Failed() []check {
	var failed []check
	for _, c := range r.Checks {
		if !c.OK {
			failed = append(failed, c)
		}
	}
	return failed
}

// story prints the demo for a human: numbered steps, what crossed the wire
// and why, and the facts checked.
type story struct {
	mu     sync.Mutex
	out    io.Writer
	result *demoResult
}

func (s *story) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format+"\n", args...)
}

func (s *story) step(n int, title string) {
	s.printf("\n%d. %s", n, title)
}

// sent shows a stanza our client sent the server.
func (s *story) sent(node *waBinary.Node) { s.printf("   → %s", describe(node)) }

// received shows a stanza the server sent our client.
func (s *story) received(node *waBinary.Node) { s.printf("   ← %s", describe(node)) }

func (s *story) why(format string, args ...any) {
	s.printf("   why: "+format, args...)
}

func (s *story) note(format string, args ...any) {
	s.printf("   "+format, args...)
}

// expect records a fact and prints whether it held.
func (s *story) expect(ok bool, fact string, detailFormat string, args ...any) {
	detail := fmt.Sprintf(detailFormat, args...)
	s.result.Checks = append(s.result.Checks, check{Fact: fact, OK: ok, Detail: detail})
	mark := "ok  "
	if !ok {
		mark = "FAIL"
	}
	line := "   [" + mark + "] " + fact
	if !ok && detail != "" {
		line += ": " + detail
	}
	s.printf("%s", line)
}

// syncWriter serialises writes from the story and from the bridge, which
// prints on whatsmeow's event goroutine.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// prefixWriter starts every line with a prefix, so that what the bridge
// itself prints stands apart from the story around it. The bridge writes
// whole lines, one per call, which is all this handles.
type prefixWriter struct {
	w      io.Writer
	prefix string
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	lines := strings.SplitAfter(string(b), "\n")
	var sb strings.Builder
	for _, line := range lines {
		if line == "" {
			continue
		}
		sb.WriteString(p.prefix + line)
	}
	if _, err := io.WriteString(p.w, sb.String()); err != nil {
		return 0, err
	}
	return len(b), nil
}
