// The bridge file is built only inside a temporary copy of mautrix-whatsapp
// (see ../run); this go.mod keeps it out of the harness module.
module bridgefile

go 1.26.0
