package pgsource

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"testing"
	"time"
)

// pair returns a paced client end and the server end of a loopback TCP
// connection.
func pair(t *testing.T) (*pacedConn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			close(accepted)
			return
		}
		accepted <- c
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, ok := <-accepted
	if !ok {
		t.Fatal("accept failed")
	}
	p, ok := pace(c).(*pacedConn)
	if !ok {
		t.Fatal("a TCP connection was not paced")
	}
	t.Cleanup(func() { p.Close(); server.Close() })
	return p, server
}

// A busy stream of small writes arrives whole and in order, in far fewer
// reads than writes, and the end of the stream is seen.
func TestPacedConnCoalescesBusyStream(t *testing.T) {
	client, server := pair(t)
	const writes, size = 400, 100
	var sent bytes.Buffer
	for i := range writes {
		sent.Write(bytes.Repeat([]byte{byte(i)}, size))
	}
	go func() {
		for i := range writes {
			if _, err := server.Write(sent.Bytes()[i*size : (i+1)*size]); err != nil {
				return
			}
			// A short pause, spun rather than slept (a sleep lasts far
			// longer than asked): each write is its own packet.
			for until := time.Now().Add(20 * time.Microsecond); time.Now().Before(until); {
			}
		}
		server.Close()
	}()
	var got bytes.Buffer
	reads, began := 0, time.Now()
	buf := make([]byte, 64<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			reads++
			got.Write(buf[:n])
		}
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("read: %v", err)
		}
	}
	if got.Len() != writes*size || !bytes.Equal(got.Bytes(), sent.Bytes()) {
		t.Fatalf("received %d bytes, not the %d sent in order", got.Len(), writes*size)
	}
	// At most one read waits per pace and the first of a pace may find
	// data already there: two a pace, for every pace begun, plus the first
	// read and one when a late write lets the stream go idle in between
	// (which also makes the run a pace longer); a scheduler that stalls
	// the writer (under -race, on a busy machine: 11 reads in 11.7 ms were
	// seen) can add one more per pace. Unpaced, nearly every write is a
	// read of its own (331 of 400 measured).
	elapsed := time.Since(began)
	if most := 3*(int(elapsed/paceTick)+2) + 2; reads > most || reads > writes/4 {
		t.Fatalf("%d reads for %d writes in %s: the busy stream was not read in paces (at most %d)", reads, writes, elapsed, min(most, writes/4))
	}
	t.Logf("%d writes arrived in %d reads over %s", writes, reads, elapsed)
}

// After a pace that brought nothing the stream is read as it comes again:
// a lone message after a pause arrives at once, not when the caller's
// deadline ends the read.
func TestPacedConnIdleAfterQuietPace(t *testing.T) {
	client, server := pair(t)
	buf := make([]byte, 1024)
	if _, err := server.Write([]byte("first")); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "first" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if !client.busy {
		t.Fatal("a read that brought data did not start pacing")
	}
	if err := client.SetReadDeadline(time.Now().Add(10 * time.Second)); err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _ = server.Write([]byte("lone"))
	}()
	began := time.Now()
	n, err := client.Read(buf)
	if err != nil || string(buf[:n]) != "lone" {
		t.Fatalf("read %q, %v", buf[:n], err)
	}
	if waited := time.Since(began); waited > 5*time.Second {
		t.Fatalf("the lone message waited %s: it stayed under the low-water mark", waited)
	}
}

// The caller's deadline ends a paced read with a timeout, as on any
// connection, and a later deadline lets reads go on.
func TestPacedConnKeepsCallerDeadline(t *testing.T) {
	client, server := pair(t)
	buf := make([]byte, 1024)
	if _, err := server.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Read(buf); err != nil {
		t.Fatal(err)
	}
	if err := client.SetReadDeadline(time.Now().Add(30 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	_, err := client.Read(buf)
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("read past the deadline returned %v, want a timeout", err)
	}
	if waited := time.Since(began); waited < 25*time.Millisecond {
		t.Fatalf("the read gave up after %s, before the caller's deadline", waited)
	}
	if err := client.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := server.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	if n, err := client.Read(buf); err != nil || string(buf[:n]) != "after" {
		t.Fatalf("read after the timeout: %q, %v", buf[:n], err)
	}
}
