"""Active learning (issue 11): candidate stream, selection and scoring as pure functions; the loop orchestrates them."""
