package user_test

import (
	"encoding/hex"
	"encoding/json"
)

func hexOf(b []byte) string { return hex.EncodeToString(b) }

func equalJSON(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return string(x) == string(y)
}
