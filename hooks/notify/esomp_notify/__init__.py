"""E-SOMP alert delivery (esomp-notify): routes alerts to log, webhook and email in the background."""
