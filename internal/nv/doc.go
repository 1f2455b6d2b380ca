// Package nv is the domain of numbergate: phone numbers, clients, access
// tokens, network identity and the store interfaces every backend implements.
//
// It imports neither net/http nor database/sql. Adapters (sqlite, authz, api,
// radius, ...) depend on it; it depends on none of them.
package nv
