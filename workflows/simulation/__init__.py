"""Digital phantoms with known truth: anatomy, receptor maps and dynamic PET."""
