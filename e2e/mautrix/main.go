// Command e2e is the Go half of the mautrix-whatsapp end-to-end harness
// (see the run script next to it): run starts and stops the processes, this
// program edits their configuration files and plays the story against them
// over HTTP: the Matrix user on Dendrite, the bridge's provisioning API and
// cmd/wamock's control API.
//
//	e2e setyaml FILE key.path=value...
//	e2e freeport
//	e2e story [flags]
package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: e2e setyaml FILE key=value... | freeport | story [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "setyaml":
		if len(os.Args) < 3 {
			err = fmt.Errorf("setyaml needs a file")
			break
		}
		err = setYAML(os.Args[2], os.Args[3:])
	case "freeport":
		err = printFreePort()
	case "story":
		err = runStory(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		os.Exit(1)
	}
}

// printFreePort prints a loopback port that was free a moment ago.
func printFreePort() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	defer ln.Close()
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	return nil
}
