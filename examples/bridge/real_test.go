package main

import (
	"bytes"
	"context"
	"go/parser"
	"go/token"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/rs/zerolog"
	"go.mau.fi/whatsmeow"
)

// whatsappCertRoot is whatsmeow.WACertPubKey as whatsmeow ships it: the
// root of WhatsApp's real Noise certificates.
var whatsappCertRoot = [32]byte{
	0x14, 0x23, 0x75, 0x57, 0x4d, 0x0a, 0x58, 0x71, 0x66, 0xaa, 0xe7, 0x1e, 0xbe, 0x51, 0x64, 0x37,
	0xc4, 0xa2, 0x8b, 0x73, 0xe3, 0x69, 0x5c, 0x6c, 0xe1, 0xf7, 0xf9, 0x54, 0x5d, 0xa8, 0xee, 0x6b,
}

const envRealModeChild = "TCTOKEN_BRIDGE_TEST_REAL_MODE_CHILD"

// TestRealModeLeavesCertRoot runs real mode's code paths in a fresh process
// (this test binary, filtered to this test) and checks that the certificate
// root is still WhatsApp's afterwards. A fresh process, because any wamock
// test in this one has already replaced the root for good.
func TestRealModeLeavesCertRoot(t *testing.T) {
	if os.Getenv(envRealModeChild) == "1" {
		realModeChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestRealModeLeavesCertRoot$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(),
		envRealModeChild+"=1",
		envDB+"=file:"+filepath.Join(t.TempDir(), "bridge.db")+"?_foreign_keys=on",
	)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("real-mode child failed: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "real mode ran; certificate root untouched") {
		t.Fatalf("the child did not run the real-mode checks:\n%s", out)
	}
}

// realModeChild is everything real mode does short of connecting to
// WhatsApp: flags, database, device, client, plugin, bridge, /status.
func realModeChild(t *testing.T) {
	if whatsmeow.WACertPubKey != whatsappCertRoot {
		t.Fatal("the certificate root was replaced before real mode even started (by a package init?)")
	}
	ctx := context.Background()
	cfg, err := parseConfig([]string{"--chat", "+1 555 000 0002"}, os.Getenv, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	log := zerolog.New(zerolog.NewTestWriter(t))
	setup, err := prepareReal(ctx, cfg, &out, log)
	if err != nil {
		t.Fatal(err)
	}
	if err = setup.sess.bridge.Run(ctx, strings.NewReader("/help\n/status\n/quit\nnot sent\n")); err != nil {
		t.Fatal(err)
	}
	setup.close()
	if !strings.Contains(out.String(), "not paired yet") {
		t.Errorf("/status on an unpaired device:\n%s", out.String())
	}
	if strings.Contains(out.String(), ">> sent") {
		t.Error("nothing after /quit may be sent")
	}
	if whatsmeow.WACertPubKey != whatsappCertRoot {
		t.Fatal("real mode replaced whatsmeow.WACertPubKey")
	}
	t.Log("real mode ran; certificate root untouched")
}

// TestOnlyDemoImportsWamock keeps the fake server, and the test root it
// installs, out of every file but demo.go, so that real mode cannot reach
// it by accident.
func TestOnlyDemoImportsWamock(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		file, err := parser.ParseFile(fset, name, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range file.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if path == "github.com/tctoken/tctoken/wamock" && name != "demo.go" {
				t.Errorf("%s imports wamock; only demo.go may", name)
			}
			if path == "testing" {
				t.Errorf("%s imports testing, which does not belong in the binary", name)
			}
		}
	}
}
