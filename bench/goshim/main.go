// Command go-shim is the bench's faithful model of the official exec2
// driver's launch chain (see bench/README.md, "exec2 chain (Go shim,
// faithful)"). Like the official driver, it is ONE Go binary that is both
// the plugin and, re-executed by `unshare ... -- <itself> exec2-shim ...`,
// the sandbox shim. The shim path therefore pays what the real one pays
// on every task launch: loading a large Go binary, the Go runtime's
// start-up and the package initialisers of the whole dependency set
// (gRPC, protobuf, go-plugin, hclog, msgpack, HCL) before the shim's own
// code runs.
//
// This is written for the bench from the documented behaviour of the
// official driver; it shares no code with it.
package main

import "os"

// shimSubcommand is the first argument that selects the shim (the same
// word the official driver uses, so process listings read the same).
const shimSubcommand = "exec2-shim"

func main() {
	// The official driver dispatches its shim from a package initialiser
	// whose package imports the driver's whole plugin stack, so every
	// dependency's init() has run by then. Dispatching at the top of
	// main() has the same effect: all package initialisers ran first.
	if len(os.Args) > 1 && os.Args[1] == shimSubcommand {
		os.Exit(shimMain(os.Args[2:]))
	}
	os.Exit(driverMain())
}
