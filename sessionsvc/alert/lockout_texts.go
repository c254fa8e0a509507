package alert

// Texts of the login-protection events, added to the catalog once at
// package initialisation (kept apart from render.go's catalog).
func init() {
	add := func(lang, lockedTitle, lockedIntro, unlockedTitle, unlockedIntro string) {
		c := catalog[lang]
		c.Titles[EventLoginLocked], c.Intro[EventLoginLocked] = lockedTitle, lockedIntro
		c.Titles[EventLoginUnlocked], c.Intro[EventLoginUnlocked] = unlockedTitle, unlockedIntro
	}
	add("en", "Login locked", "Repeated failed logins locked an account name or an address.",
		"Login lock lifted", "An administrator lifted a login lock.")
	add("de", "Anmeldung gesperrt", "Wiederholte fehlgeschlagene Anmeldungen haben einen Kontonamen oder eine Adresse gesperrt.",
		"Anmeldesperre aufgehoben", "Ein Administrator hat eine Anmeldesperre aufgehoben.")
	add("es", "Inicio de sesión bloqueado", "Varios inicios de sesión fallidos bloquearon un nombre de cuenta o una dirección.",
		"Bloqueo de inicio de sesión levantado", "Un administrador levantó un bloqueo de inicio de sesión.")
	add("fr", "Connexion verrouillée", "Des échecs de connexion répétés ont verrouillé un identifiant ou une adresse.",
		"Verrouillage levé", "Un administrateur a levé un verrouillage de connexion.")
	add("pt", "Login bloqueado", "Falhas de login repetidas bloquearam um nome de conta ou um endereço.",
		"Bloqueio de login removido", "Um administrador removeu um bloqueio de login.")
}
