package httpx

import (
	"errors"
	"fmt"
	"io"
	"net/http"
)

// BodyTooLarge is the 413 for a body larger than limit bytes.
func BodyTooLarge(limit int64) *Problem {
	return NewProblem(http.StatusRequestEntityTooLarge, "body-too-large", fmt.Sprintf("the body is larger than %d bytes", limit))
}

// receivedBody is a request body received whole before the handlers run
// (InFlight.Middleware). Reading it reads memory.
type receivedBody struct {
	data []byte
	off  int
}

func (b *receivedBody) Read(p []byte) (int, error) {
	if b.off == len(b.data) {
		return 0, io.EOF
	}
	n := copy(p, b.data[b.off:])
	b.off += n
	return n, nil
}

func (b *receivedBody) Close() error { return nil }

// rest is what is left to read, without a copy; the body is read after.
func (b *receivedBody) rest() []byte {
	r := b.data[b.off:]
	b.off = len(b.data)
	return r
}

// readAll reads what is left of a request body: a received one is in
// memory already and is not copied again.
func readAll(body io.Reader) ([]byte, error) {
	if b, ok := body.(*receivedBody); ok {
		return b.rest(), nil
	}
	return io.ReadAll(body)
}

// firstBodyBuffer is the buffer a body is first read into, unless its
// declared length is smaller. It grows by doubling as the body arrives,
// so that a body held while it arrives costs about what was sent.
const firstBodyBuffer = 512

// errBodiesBudget: receiving the body would take the bytes held by
// bodies beyond their bound.
var errBodiesBudget = errors.New("the bound on the bytes of request bodies is reached")

// readBody reads body, of declared length (-1: unknown) and at most limit
// bytes, charging its buffer's growth to charge first; charged is what
// was charged, to give back once the body is no longer held, also on an
// error. A body longer than limit fails with *http.MaxBytesError, having
// read one byte more than limit.
func readBody(body io.Reader, declared, limit int64, charge func(int64) bool) (data []byte, charged int64, err error) {
	size := limit
	if declared >= 0 {
		size = min(declared, limit)
	}
	for {
		if len(data) == cap(data) {
			if int64(len(data)) == size {
				return data, charged, readEnd(body, limit)
			}
			grown := min(max(2*int64(cap(data)), firstBodyBuffer), size)
			if !charge(grown - int64(cap(data))) {
				return nil, charged, errBodiesBudget
			}
			charged = grown
			data = append(make([]byte, 0, grown), data...)
		}
		n, err := body.Read(data[len(data):cap(data)])
		data = data[:len(data)+n]
		switch {
		case err == io.EOF:
			return data, charged, nil
		case err != nil:
			return nil, charged, err
		}
	}
}

// readEnd reads the end of a body whose every byte allowed was read: nil
// at its end, *http.MaxBytesError if there is more.
func readEnd(body io.Reader, limit int64) error {
	var more [1]byte
	for {
		n, err := body.Read(more[:])
		switch {
		case n > 0:
			return &http.MaxBytesError{Limit: limit}
		case err == io.EOF:
			return nil
		case err != nil:
			return err
		}
	}
}
