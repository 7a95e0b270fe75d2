"""Small custom Streamlit components written for the Workbench (trusted code, no user data in HTML)."""
