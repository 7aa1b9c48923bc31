package pgsource

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
)

// The walsender writes every message of the stream as its own packet: a
// source transaction of four row changes arrives as six, and a reader that
// wakes for each spends more CPU on waking than on the changes, CPU the
// source's own sessions lose on a busy machine. A busy stream is therefore
// read in paces: the socket's low-water mark (SO_RCVLOWAT) keeps the kernel
// from waking the reader until paceBytes have arrived or paceTick has
// passed, whichever comes first, and then everything there is read at once.
// An idle stream is read as it comes, so a lone transaction waits for
// nothing.
//
// The tick trades a little latency for CPU. Measured under pgbench -c 4 on
// two cores (make bench): a 1 ms tick left the replicator 0.19 cores and
// the source 0.68-0.70 of its throughput alone, 5 ms 0.11 cores and 0.77,
// 10 ms 0.09 cores and 0.78, with lag p50 3, 5.6 and 9.7 ms.
const (
	paceTick  = 5 * time.Millisecond
	paceBytes = 32 << 10
)

// pacedConn reads a TCP connection in paces while data keeps coming, and
// goes back to reading as it comes after a pace that brought nothing.
type pacedConn struct {
	*net.TCPConn
	raw      syscall.RawConn
	deadline time.Time // the caller's read deadline
	busy     bool
}

// pace returns c paced, or c itself when it is not a TCP connection (a
// Unix socket is local, and its low-water mark does not hold back poll).
func pace(c net.Conn) net.Conn {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return c
	}
	raw, err := tc.SyscallConn()
	if err != nil {
		return c
	}
	return &pacedConn{TCPConn: tc, raw: raw}
}

func (c *pacedConn) SetDeadline(t time.Time) error {
	c.deadline = t
	return c.TCPConn.SetDeadline(t)
}

func (c *pacedConn) SetReadDeadline(t time.Time) error {
	c.deadline = t
	return c.TCPConn.SetReadDeadline(t)
}

func (c *pacedConn) Read(p []byte) (int, error) {
	if !c.busy {
		n, err := c.TCPConn.Read(p)
		if n > 0 && c.lowWater(paceBytes) == nil {
			c.busy = true
		}
		return n, err
	}
	// Wait for the low-water mark or the end of the pace, whichever comes
	// first; the caller's own deadline still ends the read.
	end := time.Now().Add(paceTick)
	if !c.deadline.IsZero() && c.deadline.Before(end) {
		end = c.deadline
	}
	if err := c.TCPConn.SetReadDeadline(end); err != nil {
		return 0, err
	}
	n, err := c.TCPConn.Read(p)
	if rerr := c.TCPConn.SetReadDeadline(c.deadline); rerr != nil && err == nil {
		err = rerr
	}
	if n > 0 || !errors.Is(err, os.ErrDeadlineExceeded) || end.Equal(c.deadline) {
		return n, err
	}
	// The pace is over: take what came under the low-water mark.
	n, err = c.readNow(p)
	if n > 0 || err != nil {
		return n, err
	}
	// Nothing came in a whole pace: the stream is idle, read it as it
	// comes again.
	if err := c.lowWater(1); err != nil {
		return 0, err
	}
	c.busy = false
	return c.Read(p)
}

// readNow reads what the socket holds without waiting; 0 and no error when
// it holds nothing.
func (c *pacedConn) readNow(p []byte) (int, error) {
	var n int
	var rerr error
	err := c.raw.Read(func(fd uintptr) bool {
		n, rerr = syscall.Read(int(fd), p)
		return true
	})
	switch {
	case err != nil:
		return 0, err
	case errors.Is(rerr, syscall.EAGAIN):
		return 0, nil
	case rerr != nil:
		return 0, &net.OpError{Op: "read", Net: "tcp", Source: c.LocalAddr(), Addr: c.RemoteAddr(), Err: os.NewSyscallError("read", rerr)}
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// lowWater sets the socket's SO_RCVLOWAT.
func (c *pacedConn) lowWater(bytes int) error {
	var serr error
	err := c.raw.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVLOWAT, bytes)
	})
	if err != nil {
		return err
	}
	return serr
}
