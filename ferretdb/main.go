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
//	-clients-dir <dir>                a server shared by several processes: it
//	                                   exits once no live process id is named
//	                                   by a file in <dir> (each user adds its
//	                                   own on start and removes it on stop)
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite" // the driver FerretDB itself uses (registered as "sqlite")
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27117", "TCP address to listen on")
	dir := flag.String("dir", "", "SQLite data directory (created if missing)")
	logLevel := flag.String("log-level", "error", "log level: debug, info, warn or error")
	exitOnStdinEOF := flag.Bool("exit-on-stdin-eof", false, "exit when stdin reaches EOF (parent process gone)")
	removeDir := flag.Bool("remove-dir-on-exit", false, "delete the -dir directory on shutdown")
	clientsDir := flag.String("clients-dir", "", "exit once no live process id is listed in this directory")
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

	go maintainIDIndexes(ctx, abs, logger)
	if *clientsDir != "" {
		go exitWhenNoClients(ctx, *clientsDir, stop)
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

// idIndexSuffix names the index maintainIDIndexes adds to every collection table.
const idIndexSuffix = "__id_path"

// maintainIDIndexes gives every collection table an index on the expression
// FerretDB v1.24.2 filters by for an exact `_id` (`_ferretdb_sjson->'$._id'`).
// FerretDB's own unique `_id` index is on `_ferretdb_sjson->"_id"`, which
// SQLite does not match against that expression, so without this every
// exact `_id` find, update and delete scans the whole table (EXPLAIN QUERY
// PLAN: "SCAN"; a find by `_id` in a 50,000-document collection took 30 ms
// instead of under 1 ms). Collections appear at any time, so the data
// directory is checked every half second; a database whose schema did not
// change since the last check costs one `PRAGMA schema_version`.
func maintainIDIndexes(ctx context.Context, dir string, logger *slog.Logger) {
	type seen struct {
		ino     uint64
		version int64
		db      *sql.DB
	}
	dbs := map[string]*seen{}
	defer func() {
		for _, s := range dbs {
			_ = s.db.Close()
		}
	}()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		present := map[string]bool{}
		for _, file := range files {
			present[file] = true
			st, err := os.Stat(file)
			if err != nil {
				continue
			}
			ino := inode(st)
			s := dbs[file]
			if s != nil && s.ino != ino {
				// Dropped and created again: the old handle reads a deleted file.
				_ = s.db.Close()
				s = nil
			}
			if s == nil {
				db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
				if err != nil {
					continue
				}
				db.SetMaxOpenConns(1)
				s = &seen{ino: ino, version: -1, db: db}
				dbs[file] = s
			}
			var version int64
			if err := s.db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&version); err != nil || version == s.version {
				continue
			}
			if err := addIDIndexes(ctx, s.db); err != nil {
				logger.Warn("ferretdb-test-server: could not add _id indexes", "file", file, "error", err)
				continue
			}
			// Our own CREATE INDEX moved the version on; read it again so the next check is a no-op.
			_ = s.db.QueryRowContext(ctx, "PRAGMA schema_version").Scan(&s.version)
		}
		for file, s := range dbs {
			if !present[file] {
				_ = s.db.Close()
				delete(dbs, file)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// addIDIndexes creates the missing `_id` expression indexes of one database file.
func addIDIndexes(ctx context.Context, db *sql.DB) error {
	rows, err := db.QueryContext(ctx, `SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '\_ferretdb\_%' ESCAPE '\'
		AND name || ? NOT IN (SELECT name FROM sqlite_master WHERE type = 'index')`, idIndexSuffix)
	if err != nil {
		return err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return err
		}
		tables = append(tables, name)
	}
	rows.Close()
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+idIndexSuffix, t)
		if _, err := db.ExecContext(ctx, q); err != nil && !strings.Contains(err.Error(), "no such table") {
			return err
		}
	}
	return nil
}

// inode identifies a file across renames, so a database dropped and created again is noticed.
func inode(st os.FileInfo) uint64 {
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		return sys.Ino
	}
	return uint64(st.ModTime().UnixNano())
}

// exitWhenNoClients calls stop once no file in dir names a live process id
// for two checks in a row (a second apart), after a short grace for the
// starter to register. Files of dead processes (SIGKILLed users) are removed.
func exitWhenNoClients(ctx context.Context, dir string, stop func()) {
	idle := 0
	grace := time.After(3 * time.Second)
	<-grace
	for {
		if liveClients(dir) > 0 {
			idle = 0
		} else if idle++; idle >= 2 {
			stop()
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}

// liveClients counts the files of dir named by the id of a running process.
func liveClients(dir string) int {
	entries, _ := os.ReadDir(dir)
	n := 0
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		if err := syscall.Kill(pid, 0); err == nil || err == syscall.EPERM {
			n++
		} else {
			_ = os.Remove(filepath.Join(dir, e.Name()))
		}
	}
	return n
}
