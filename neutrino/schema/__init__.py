"""What the API speaks, independent of HTTP: resources described as data, validators,
request parsing and policy. Services and the database layer import it; the HTTP package
(`neutrino.api`) sits on top of it and nothing here imports that package."""
