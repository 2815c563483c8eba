package ledger

// AcceptsHandOvers reports whether the worker runs and handlers may claim
// charges for it (tests wait for it after starting Run).
func (s *Service) AcceptsHandOvers() bool {
	s.handed.mu.Lock()
	defer s.handed.mu.Unlock()
	return s.handed.running
}
