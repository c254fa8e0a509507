// Package geoiptest writes small MaxMind-format databases for tests.
package geoiptest

import (
	"fmt"
	"net"
	"os"
	"path/filepath"

	"github.com/maxmind/mmdbwriter"
	"github.com/maxmind/mmdbwriter/mmdbtype"
)

// Place is one network's record.
type Place struct {
	Network     string // CIDR
	CountryCode string
	Country     string
	City        string // City databases only
	Region      string
	Latitude    float64
	Longitude   float64
	TimeZone    string
}

// Kind is the database shape.
type Kind string

// Shapes.
const (
	City    Kind = "GeoLite2-City"
	Country Kind = "GeoLite2-Country"
)

// Write builds a database of the given shape at path (atomically: written
// next to it, then renamed).
func Write(path string, kind Kind, places []Place) error {
	tree, err := mmdbwriter.New(mmdbwriter.Options{
		DatabaseType:            string(kind),
		RecordSize:              24,
		IncludeReservedNetworks: true,
	})
	if err != nil {
		return fmt.Errorf("new tree: %w", err)
	}
	for _, p := range places {
		_, network, err := net.ParseCIDR(p.Network)
		if err != nil {
			return fmt.Errorf("network %q: %w", p.Network, err)
		}
		if err := tree.Insert(network, record(kind, p)); err != nil {
			return fmt.Errorf("insert %s: %w", p.Network, err)
		}
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".geoip-*.mmdb")
	if err != nil {
		return fmt.Errorf("create: %w", err)
	}
	if _, err := tree.WriteTo(tmp); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return fmt.Errorf("write: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("close: %w", err)
	}
	return os.Rename(tmp.Name(), path)
}

func names(en string) mmdbtype.Map {
	return mmdbtype.Map{"en": mmdbtype.String(en), "de": mmdbtype.String(en + " (de)")}
}

func record(kind Kind, p Place) mmdbtype.Map {
	country := mmdbtype.Map{
		"iso_code":   mmdbtype.String(p.CountryCode),
		"names":      names(p.Country),
		"geoname_id": mmdbtype.Uint32(1),
	}
	m := mmdbtype.Map{
		"country":            country,
		"registered_country": country,
		"continent":          mmdbtype.Map{"code": mmdbtype.String("EU")},
	}
	if kind == City {
		m["city"] = mmdbtype.Map{"names": names(p.City)}
		if p.Region != "" {
			m["subdivisions"] = mmdbtype.Slice{mmdbtype.Map{"iso_code": mmdbtype.String("X"), "names": names(p.Region)}}
		}
		m["location"] = mmdbtype.Map{
			"latitude":        mmdbtype.Float64(p.Latitude),
			"longitude":       mmdbtype.Float64(p.Longitude),
			"time_zone":       mmdbtype.String(p.TimeZone),
			"accuracy_radius": mmdbtype.Uint16(50),
		}
	}
	return m
}

// Sample places used across tests.
var (
	London  = Place{"81.2.69.0/24", "GB", "United Kingdom", "London", "England", 51.5142, -0.0931, "Europe/London"}
	Berlin  = Place{"85.214.0.0/16", "DE", "Germany", "Berlin", "Land Berlin", 52.5244, 13.4105, "Europe/Berlin"}
	NewYork = Place{"2001:db8:1::/48", "US", "United States", "New York", "New York", 40.7128, -74.0060, "America/New_York"}
	Sydney  = Place{"1.128.0.0/11", "AU", "Australia", "Sydney", "New South Wales", -33.8688, 151.2093, "Australia/Sydney"}
	Tokyo   = Place{"2001:db8:2::/48", "JP", "Japan", "Tokyo", "Tokyo", 35.6895, 139.6917, "Asia/Tokyo"}
)

// Samples are all sample places.
var Samples = []Place{London, Berlin, NewYork, Sydney, Tokyo}
