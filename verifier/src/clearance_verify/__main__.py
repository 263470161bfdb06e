from clearance_verify.cli import main

main()
