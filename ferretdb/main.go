// Command ferretdb-test-server starts FerretDB v1 (MongoDB wire protocol over
// SQLite) for the test suite on machines where no real mongod can be had.
//
// Usage: ferretdb-test-server -listen 127.0.0.1:27117 -dir /abs/data/dir
//
// Optional flags:
//
//	-log-level debug|info|warn|error  (default "error"; FerretDB logs every
//	                                   failed command at WARN, which is noisy)
//	-exit-on-stdin-eof                exit when stdin is closed, so the server
//	                                   dies with the process that spawned it
//	                                   even if that process is SIGKILLed
//	-remove-dir-on-exit               delete -dir on shutdown (throwaway data)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27117", "TCP address to listen on")
	dir := flag.String("dir", "", "SQLite data directory (created if missing)")
	logLevel := flag.String("log-level", "error", "log level: debug, info, warn or error")
	exitOnStdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin reaches EOF (parent process gone)")
	removeDir := flag.Bool("remove-dir-on-exit", false, "delete the -dir directory on shutdown")
	flag.Parse()

	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server: bad -log-level:", err)
		os.Exit(2)
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	if *dir == "" {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server: -dir is required")
		os.Exit(2)
	}
	abs, err := filepath.Abs(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server:", err)
		os.Exit(2)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server:", err)
		os.Exit(2)
	}
	// FerretDB requires the SQLite URL to name a directory and end with a slash.
	url := "file:" + abs
	if !strings.HasSuffix(url, "/") {
		url += "/"
	}

	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Logger:    logger,
		Handler:   "sqlite",
		SQLiteURL: url,
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server:", err)
		os.Exit(1)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	if *exitOnStdinEOF {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			stop()
		}()
	}

	fmt.Printf("ferretdb-test-server listening on %s (data in %s)\n", *listen, abs)
	err = f.Run(ctx)
	if *removeDir {
		_ = os.RemoveAll(abs)
	}
	if err != nil && ctx.Err() == nil {
		fmt.Fprintln(os.Stderr, "ferretdb-test-server:", err)
		os.Exit(1)
	}
}
