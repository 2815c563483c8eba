package catalog

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/modshop/modshop/platform/apperr"
)

// webp builds a WebP file whose first chunk is kind with payload.
func webp(kind string, payload []byte) []byte {
	chunk := append([]byte(kind), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(chunk[4:], uint32(len(payload)))
	body := append([]byte("WEBP"), append(chunk, payload...)...)
	out := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(out[4:], uint32(len(body)))
	return append(out, body...)
}

// TestSniffImage_ReadsEachWebPHeader: the three WebP first chunks give the
// canvas size; a header that lies or stops short is not an image.
func TestSniffImage_ReadsEachWebPHeader(t *testing.T) {
	t.Parallel()
	vp8x := make([]byte, 10)
	vp8x[4], vp8x[5], vp8x[7], vp8x[8] = 0x1f, 0x03, 0x57, 0x02               // 800-1, 600-1
	vp8 := []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x40, 0x01, 0xf0, 0x00} // 320 x 240
	bits := uint32(640-1) | uint32(480-1)<<14
	vp8l := []byte{0x2f, byte(bits), byte(bits >> 8), byte(bits >> 16), byte(bits >> 24), 0, 0, 0, 0, 0}
	for _, c := range []struct {
		what string
		data []byte
		w, h int
	}{
		{"VP8X", webp("VP8X", vp8x), 800, 600},
		{"VP8", webp("VP8 ", vp8), 320, 240},
		{"VP8L", webp("VP8L", vp8l), 640, 480},
	} {
		got, err := sniffImage(c.data)
		if err != nil || got.ContentType != "image/webp" || got.Width != c.w || got.Height != c.h {
			t.Errorf("%s: %+v %v, want image/webp %dx%d", c.what, got, err, c.w, c.h)
		}
	}
	badStart := append([]byte(nil), vp8...)
	badStart[3] = 0
	badSig := append([]byte(nil), vp8l...)
	badSig[0] = 0
	for what, data := range map[string][]byte{
		"VP8 without its start code": webp("VP8 ", badStart),
		"VP8L without its signature": webp("VP8L", badSig),
		"an unknown first chunk":     webp("ALPH", vp8x),
		"a header cut short":         webp("VP8X", vp8x)[:25],
		"a zero size":                webp("VP8 ", []byte{0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0, 0, 0xf0, 0}),
	} {
		if _, err := sniffImage(data); !errors.Is(err, apperr.ErrInvalid) {
			t.Errorf("%s: %v, want it refused as invalid", what, err)
		}
	}
}
