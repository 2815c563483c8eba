package accounts

// HoldHashes makes every password hash of s call hold while it holds its
// slot, before it hashes: tests count and pause the hashes in flight.
func HoldHashes(s *Service, hold func()) { s.hashes.hold = hold }
