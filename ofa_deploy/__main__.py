from ofa_deploy.cli.main import main

main()
