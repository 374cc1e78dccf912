package apikeys

import "time"

// SetClock makes c read now instead of the wall clock (tests only).
func (c *Cache) SetClock(now func() time.Time) { c.now = now }
