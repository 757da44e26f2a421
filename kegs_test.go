package main

// kegBody is a keg as a client decodes it.
type kegBody struct {
	ID        int64        `json:"id"`
	TapID     int64        `json:"tapId"`
	Beverage  beverageBody `json:"beverage"`
	Size      float64      `json:"size"`
	Served    float64      `json:"served"`
	Remaining float64      `json:"remaining"`
	Percent   float64      `json:"percent"`
	Pours     int          `json:"pours"`
	LowAt     float64      `json:"lowAt"`
	Low       bool         `json:"low"`
	Empty     bool         `json:"empty"`
	StartedAt string       `json:"startedAt"`
	EndedAt   string       `json:"endedAt"`
	RunsOutAt string       `json:"runsOutAt"`
}

type beverageBody struct {
	Name    string   `json:"name"`
	Brewery string   `json:"brewery"`
	Style   string   `json:"style"`
	ABV     *float64 `json:"abv"`
}
